CREATE TABLE vibedata_app.settings (
    key        text        PRIMARY KEY,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO vibedata_app.settings (key, value) VALUES
    ('ingest.max_parallel_jobs', '8'::jsonb),
    ('ingest.retention_days', '30'::jsonb),
    ('search.enabled', 'true'::jsonb)
ON CONFLICT (key) DO NOTHING;
