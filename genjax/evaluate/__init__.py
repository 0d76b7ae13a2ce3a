"""Evaluation: sample quality on our own frozen classifier, likelihoods (IWAE), reconstruction
(PSNR, SSIM), and face swaps judged by dlib's descriptor, which this project did not train."""
