"""The vision zoo for the τJp chapter: eight small image-classification tasks built offline."""
