"""One module per paper (its runs and claims) and one per page (what a notebook shows), on the kit."""
