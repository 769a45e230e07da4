-- Span grants (docs/limits.md): a grant may be spent in the slices from
-- slice to last_slice. A grant of one slice has last_slice = slice, as
-- every grant recorded before this migration had.
CREATE TABLE usage_slices_new (
	subject    TEXT    NOT NULL,
	limit_name TEXT    NOT NULL,
	slice      INTEGER NOT NULL,
	last_slice INTEGER NOT NULL,
	granted    INTEGER NOT NULL,
	PRIMARY KEY (subject, limit_name, slice, last_slice)
) STRICT, WITHOUT ROWID;

INSERT INTO usage_slices_new (subject, limit_name, slice, last_slice, granted)
	SELECT subject, limit_name, slice, slice, granted FROM usage_slices;
DROP TABLE usage_slices;
ALTER TABLE usage_slices_new RENAME TO usage_slices;
