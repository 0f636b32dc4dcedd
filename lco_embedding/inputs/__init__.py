"""What an input is, before any media is read: parsing (:mod:`.parse`), items' own media budgets (:mod:`.budgets`),
the prompt table (:mod:`.prompts`) and special-token strings kept as text (:mod:`.special_tokens`)."""
