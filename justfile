# Developer recipes. `just` is optional: each recipe is one plain command.

# Start the service on its embedded defaults (127.0.0.1:8080, SQLite in ./data, mail to ./data/mail).
run:
    ./scripts/run.sh

# The whole test suite, as CI runs it.
test:
    ./scripts/test.sh

# Lints, warnings as errors.
lint:
    cargo clippy --workspace --all-targets --features secureai-domain/mocks -- -D warnings

# Format the code.
fmt:
    cargo fmt --all
