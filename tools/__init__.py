"""Scripts that run the book: execution, budget, table of contents."""
