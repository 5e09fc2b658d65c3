"""Training: the methods (`methods`), run names and the model of a run (`runs`), the loop with
checkpoint and resume (`loop`), batches (`batches`), on-device augmentation (`augment`) and
several processes (`distributed`)."""
