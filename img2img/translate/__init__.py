"""Translation: the Translator pipeline and the adapters that feed it files and videos."""

from img2img.translate.images import TranslateReport, translate_files
from img2img.translate.temporal import TemporalFilter
from img2img.translate.translator import Translator
from img2img.translate.video import convert_video

__all__ = ["Translator", "TranslateReport", "translate_files", "convert_video", "TemporalFilter"]
