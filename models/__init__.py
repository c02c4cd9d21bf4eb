"""The domain: tables, migrations and business rules. Knows nothing of GraphQL or HTTP."""
