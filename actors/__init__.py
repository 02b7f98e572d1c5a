"""The components, one package each: a thin pykka actor beside pure, thread-free logic."""
