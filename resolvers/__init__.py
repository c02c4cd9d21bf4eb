"""GraphQL only: Strawberry types, queries, mutations, loaders and permissions. Thin."""
