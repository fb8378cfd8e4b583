-- pgvector first: later tables use the vector type.
CREATE EXTENSION IF NOT EXISTS vector;
