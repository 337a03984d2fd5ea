-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS datasets_name_lower_idx
    ON vibedata_app.datasets (lower(name) text_pattern_ops);
