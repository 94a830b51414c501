-- The cache's side of a request: the similarity of a semantic or advanced hit (null for an
-- exact hit and a miss) and what the provider charged for the answer a hit served (the
-- cost it saved; null on a miss).
ALTER TABLE $db.requests ADD COLUMN IF NOT EXISTS cache_similarity Nullable(Float32) AFTER cache_tier;

ALTER TABLE $db.requests ADD COLUMN IF NOT EXISTS cache_saved_usd Nullable(Float64) AFTER cache_similarity
