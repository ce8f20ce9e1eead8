"""Translation: the Translator pipeline and the adapters that feed it files."""

from img2img.translate.images import TranslateReport, translate_files
from img2img.translate.translator import Translator

__all__ = ["Translator", "TranslateReport", "translate_files"]
