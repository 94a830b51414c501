-- When a row became queryable: set by ClickHouse at insert. `floopy logs tail` follows new
-- rows by it (a long stream's row lands after rows of requests that started later), and the
-- time from a request's answer to its row is measured with it.
ALTER TABLE $db.requests ADD COLUMN IF NOT EXISTS logged_at DateTime64(6, 'UTC') DEFAULT now64(6);
