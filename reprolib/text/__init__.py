"""Language-model tracks of the τJp paper (seed 004) on the mini zoo: ``toxicity`` (Tables 4 and 9)."""
