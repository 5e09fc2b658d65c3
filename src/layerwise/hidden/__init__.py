"""Hidden states: extraction of every layer's representation and exit logits from a trained
model (`extract`), the file that holds them (`files`) and the layer-wise metrics read off them
(`metrics`)."""
