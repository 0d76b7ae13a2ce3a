"""Faces in photos and videos: detect and align (detect, align), train-time augmentation (augment),
paste-back (blend), synthetic marks (mark), video input and output (video), the swap pipeline (swap).

The detector, landmarks and video codecs need the `faces` extra (`pip install -e ".[faces]"`:
dlib-bin with face-recognition-models' weights, imageio-ffmpeg, OpenCV); nothing is downloaded at
run time. Research use only: every output of a swap is marked synthetic (genjax.faces.mark).
"""
