-- Span grants (docs/limits.md): a grant may be spent in the slices from
-- slice to last_slice. A grant of one slice has last_slice = slice, as
-- every grant recorded before this migration had.
ALTER TABLE usage_slices ADD COLUMN last_slice bigint;
UPDATE usage_slices SET last_slice = slice;
ALTER TABLE usage_slices ALTER COLUMN last_slice SET NOT NULL;
ALTER TABLE usage_slices DROP CONSTRAINT usage_slices_pkey;
ALTER TABLE usage_slices ADD PRIMARY KEY (subject, limit_name, slice, last_slice);
