"""Where a checkpoint comes from and how it is loaded: the hub or a folder (:mod:`.hub`), the model class, device,
dtype and attention (:mod:`.loading`), and quantized loading (:mod:`.quantization`)."""
