-- The rest of SPEC §9: meta (compact JSON object, kept as text so that its
-- bytes are exactly the compact form verify hands out), the IP allowlist
-- (entries joined by ","), disabling, the revocation reason and the source.
ALTER TABLE keys ADD COLUMN meta text;
ALTER TABLE keys ADD COLUMN ip_allowlist text;
ALTER TABLE keys ADD COLUMN disabled_at timestamptz;
ALTER TABLE keys ADD COLUMN disabled_reason text;
ALTER TABLE keys ADD COLUMN revocation_reason text;
ALTER TABLE keys ADD COLUMN source text NOT NULL DEFAULT 'issued';

-- Whether any key was imported, asked at start (index.imported).
CREATE INDEX keys_imported ON keys (id) WHERE source = 'imported';
