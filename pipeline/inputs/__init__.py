"""Reading what users give us: stacks, the sessions sheet, discovery, the curation file."""
