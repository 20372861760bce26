"""The heads IFA competes with: Semantic-FPN, PPM (PSPNet), OCR (OCRNet), and the auxiliary FCN head."""
from baselines.fcn import FCNHead
from baselines.fpn import FPNHead
from baselines.ocr import OCRHead
from baselines.ppm import PPMHead

__all__ = ["FCNHead", "FPNHead", "OCRHead", "PPMHead"]
