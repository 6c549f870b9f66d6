"""CiteULike-a (Wang & Blei): user libraries, item tags and citations."""

from __future__ import annotations

from . import Source, plain

_REPO = "https://raw.githubusercontent.com/js05212/citeulike-a/master/"

_SHA256 = {
    "citeulike-a/citations.dat": "78458ba6b6f013552c43f47dbec1c2d19073820155c40567744cd8a038044364",
    "citeulike-a/item-tag.dat": "0f7b432796a5038ed2631c02b99d70e636123673afc11bf9e051de5b49467890",
    "citeulike-a/tags.dat": "c02b3e5ee1a57f88f3a598b2040018bb198f54cd0c11116fa7a0db905b6f60e3",
    "citeulike-a/users.dat": "53211d82c14ff261e595634d285ed9fbf8049cf81dcb751d924d695b9612a02c",
    "citeulike-a/vocabulary.dat": "f3ffa75f7524a9ff2ecc2a0cb1a0f29f4d46e32f17bc8e2f8472a1c7c814f319",
}

SOURCES = (
    Source(
        folder="citeulike-a",
        name="CiteULike-a (Wang & Blei, KDD 2011)",
        url="https://github.com/js05212/citeulike-a",
        licence="research use; cite Wang & Blei and Wang, Chen & Li",
        citation="C. Wang and D. M. Blei, Collaborative topic modeling for recommending scientific articles, "
        "KDD 2011; H. Wang, B. Chen, W.-J. Li, Collaborative Topic Regression with Social Regularization for "
        "Tag Recommendation, IJCAI 2013",
        how="clone github js05212/citeulike-a and copy users.dat, item-tag.dat, tags.dat, citations.dat and "
        "vocabulary.dat into citeulike-a/",
        sha256=_SHA256,
        downloads=tuple(plain(_REPO + relpath.split("/", 1)[1], relpath) for relpath in _SHA256),
    ),
)
