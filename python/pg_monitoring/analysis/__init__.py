"""Analysis of what applications send: complexity.py measures GraphQL documents (the
`graphql` extra)."""
