"""img2img: image-to-image translation GANs (pix2pix, CycleGAN, ...) on one shared backbone."""

__version__ = "0.1.0"
