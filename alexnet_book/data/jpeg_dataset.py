"""Without a cache: a torch Dataset that decodes JPEGs on the fly."""
from __future__ import annotations

import torch

from .decode import decode_image
from .types import ImageList

class JpegDataset(torch.utils.data.Dataset):
    """Decode image files on the fly to the stored §2 view (shorter side → S, centre crop): (uint8 S×S×3, label).

    For users without a cache and for the benchmark; batch the results and apply ``augment.train_batch``.
    ``fast`` (default True): libjpeg's fast DCT and chroma upsampling, as streaming loaders use (see
    ``decode_image``); the cache decodes exactly.  Undecodable files raise ValueError naming the file (build a
    cache to have them skipped and counted).
    """

    def __init__(self, images: ImageList, size: int, *, fast: bool = True):
        if images.storage != "files":
            raise ValueError(f"JpegDataset reads extracted files, not {images.storage}; build a cache instead")
        self.images, self.size, self.fast = images, size, fast

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path = self.images.keys[i]
        try:
            array, _ = decode_image(path, self.size, fast=self.fast)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path}: cannot decode ({e}); delete or replace the file") from None
        return torch.from_numpy(array), self.images.labels[i]
