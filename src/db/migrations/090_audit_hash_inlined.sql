-- certflow_sha256_hex() calls convert_to(), which is STABLE (it depends on the database's
-- encoding). Declared IMMUTABLE, it could not be inlined into the statement that appends an
-- audit entry: Postgres ran its body as a separate SQL function, planned anew at every
-- call, three times per entry. Declared STABLE, as its body is, it is inlined. The result
-- is the same.
ALTER FUNCTION certflow_sha256_hex(text) STABLE;
