"""Stage 2, frames -> faces -> crops: detectors by name (detector; BlazeFace in blazeface, box geometry in
boxes), tracks per person (tracks), square crops (crops), the pipeline over one video (find), and
`dfdc faces`' files on disk (export, sheet).

Takes a `Video`; gives `Faces`: tracks (main person first) and each track's crops.
"""
