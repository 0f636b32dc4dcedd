"""The leaves every other part stands on: errors, the modality table, input types, outcomes, file checks, memory
mappings, the environment report and optional imports. Nothing here imports another part of the package."""
