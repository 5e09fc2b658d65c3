"""Training: the methods (`methods`), the loop with checkpoint and resume (`loop`), batches
(`batches`), on-device augmentation (`augment`) and several processes (`distributed`)."""
