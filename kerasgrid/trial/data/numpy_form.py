"""The data as `fit` takes it on JAX and PyTorch: NumPy batches, never a TensorFlow tensor.

Training: a Python generator of the endless stream (Keras reads a generator on from where the
last epoch stopped, given steps_per_epoch). Validation: a keras.utils.PyDataset of one pass, which
Keras reads from its first batch every epoch, in order, in this process and no further than its
length (Keras 3's JAX trainer keeps one validation iterator for the whole `fit` and replays a
generator's first batches into it: a generator would not give every epoch the same batches).
"""


def training_generator(batches, start: int = 0):
    """The endless stream of `batches` (kerasgrid.trial.data.sources), from batch `start` on."""
    return batches.numpy(start)


def validation_sequence(passes):
    """A keras.utils.PyDataset of `passes.steps` batches: one pass of `passes`
    (kerasgrid.trial.data.validation), read afresh each epoch."""
    import keras

    class OnePassEachEpoch(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.iterator, self.next = None, 0

        def __len__(self):
            return passes.steps

        def __getitem__(self, index):
            if index == 0 or self.iterator is None or index != self.next:
                # A new pass (Keras reads batch 0 first each epoch); a read out of order starts over.
                self.iterator, self.next = passes.one_pass(), 0
            for _ in range(index - self.next):
                next(self.iterator)
            self.next = index + 1
            return next(self.iterator)

    return OnePassEachEpoch()
