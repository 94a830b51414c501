-- Merge the wide tables a column at a time (the vertical algorithm) from the first row:
-- a merge then holds one column of its parts in memory, not every column of them. Measured
-- on the embedded store at 5,000 requests/s: the largest merge went from about 270 MiB to
-- 30 MiB, and the process's resident memory peaks with it (benches/RESULTS.md, "Load").
ALTER TABLE $db.requests MODIFY SETTING
    vertical_merge_algorithm_min_rows_to_activate = 1,
    vertical_merge_algorithm_min_columns_to_activate = 1;

ALTER TABLE $db.spans MODIFY SETTING
    vertical_merge_algorithm_min_rows_to_activate = 1,
    vertical_merge_algorithm_min_columns_to_activate = 1
