-- The foreign keys of the tables the seed fills (parameter: their names).
-- The seed drops them while loading and adds them back afterwards: one
-- set-based validation per key instead of a trigger call per inserted row,
-- which otherwise costs more than generating the data.
SELECT n.nspname AS schema_name, r.relname AS table_name, c.conname AS constraint_name,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint AS c
JOIN pg_class AS r ON r.oid = c.conrelid
JOIN pg_namespace AS n ON n.oid = r.relnamespace
WHERE c.contype = 'f'
  AND c.conrelid = ANY (%(tables)s::regclass[])
ORDER BY c.oid;
