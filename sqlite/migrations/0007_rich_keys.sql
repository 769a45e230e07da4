-- The rest of SPEC §9: meta (compact JSON object), the IP allowlist
-- (entries joined by ","), disabling, the revocation reason and the source.
ALTER TABLE keys ADD COLUMN meta TEXT;
ALTER TABLE keys ADD COLUMN ip_allowlist TEXT;
ALTER TABLE keys ADD COLUMN disabled_at INTEGER;
ALTER TABLE keys ADD COLUMN disabled_reason TEXT;
ALTER TABLE keys ADD COLUMN revocation_reason TEXT;
ALTER TABLE keys ADD COLUMN source TEXT NOT NULL DEFAULT 'issued';

-- Whether any key was imported, asked at start (index.imported).
CREATE INDEX keys_imported ON keys (id) WHERE source = 'imported';
