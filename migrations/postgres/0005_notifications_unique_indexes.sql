-- Nothing to change here. On SQLite, 0005 declares the uniqueness of
-- `notifications` as indexes of their own, so that a rebuild can build them
-- after loading the table; a PostgreSQL rebuild drops the primary key and
-- unique constraints of its shadow table instead and adds them back once
-- it is loaded. The file keeps both directories' migrations in step.
SELECT 1;
