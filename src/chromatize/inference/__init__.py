"""Running trained models: alternative runtimes behind the model contract."""
