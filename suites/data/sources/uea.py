"""UEA multivariate time series classification archive, 2018 release (`.ts` files)."""

from __future__ import annotations

from . import Source, archive

# The archive serves one zip per dataset holding <Name>_TRAIN.ts and <Name>_TEST.ts (plus other formats).
ZIP_URL = "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"

# name -> (sha256 of <Name>_TRAIN.ts, sha256 of <Name>_TEST.ts)
_SHA256 = {
    "ArticularyWordRecognition": ("40c54640f20aa094115a47ad1f4745f5adcc08a65085659a4a042aee1c32a6d5",
                                  "b4431c96e04310c55b8f50b6f93b0e20cfa019a2d25ab2a5c844e5e0b1375995"),
    "AtrialFibrillation": ("1037b09c03dfc9d9d6af0a32208519ae4697f6c86083d80dd4f57f7fc1f2cdc9",
                           "fed5ef4795417dd14513aa39233676d20f9dbc8d016acc71940ef3f74368ade7"),
    "BasicMotions": ("3dcb66b389ba93ed2de7879bceb27548e0ea7a5ffb59888d0db36b59af2a0e28",
                     "ea93ab9f58faa6869c18bbe16a6dca0b02f174aa676af7568788a1a2a8e7e8da"),
    "ERing": ("582d9d14bcda44a4bb4b7dc37bb210df70b57e4bf030245ebf1c28ae7e59edab",
              "2399c7d2bc7d8b57466441e9f499afdace7ff8353b8ebff090799b22aaa8f812"),
    "Epilepsy": ("e2555afb91b2484831bcc66b3b5db3a362ba0697e855cfbb041eac165e371022",
                 "e68e220e31a9235fd7da23bbae2e59bd8315a3cc4c2b12f803885235b61b52ac"),
    "FingerMovements": ("947608221dbeea7c260a18c9c0b3d53bd8708d3d56886b40504d489355cd1f45",
                        "1314ea4caaa744eda77a1f5f13e0390cfec4d950da78f58b140580fa7d0518ef"),
    "Handwriting": ("c187e2288bd7f0667ab7453de436feeadb5dd417c5778a6c62b71852b50736cc",
                    "156ee781ad41d58b4e5d48a907aef956f5a3756e1ab2d796c785db1a47863524"),
    "JapaneseVowels": ("68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
                       "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462"),
    "LSST": ("34cd6eedbf0d555d737a052b1836d0247a699e254dafc8d2d87522301d6cd7fd",
             "cfbd8e01f6229dbaf0b9bbdd8bd2d263c24089ce40688566defac3638eeb4894"),
    "Libras": ("e3e50019f02dccb95b930df592b36d388a3a1b5f7a222c1e8ec2bb3137ed102a",
               "1aec3b3737c3bdaf82cbc25e715f4a5beb25f11fac092337c2bdc0f866934788"),
    "NATOPS": ("3567f0aa297e89327215ee1147537e06f7bdc51f48ac8d2c39aaa34fb1eab1b7",
               "3a9a41a948c30d19db6b9e0ec44d946d42199c4f8724c2aa6e8b71b28612404e"),
    "PenDigits": ("4d24d1f0d4f477cfc3efeaa1aebacba53c8c145d99b7fa37b962139958c1f4af",
                  "ddd62484a72ebf058f8f0e0390ba3cdff174faa71397ff5336b2d4119ee76f6c"),
    "RacketSports": ("f5374faaaf6a1aad9ca2ec26d0e39ba61f26b8a6d6bf1766a691027c1ca6f023",
                     "c8179bbde0e45f41218ce4a46258524ae7abca7d0e7e45f4424a23d1b1d98d8d"),
    "StandWalkJump": ("8c8c6ed5178ea28781f6e06f5bd5e4c032f1600570343f7f7ca596c936497237",
                      "2309512e424c608393a1af7296fb8b53780b54699f5146283a19411bc3419959"),
    "UWaveGestureLibrary": ("cb7cd8cb995775d30dacbfd5c2a9cb3a80dfbd186fd444294bae70c9162dead1",
                            "517dbc817c3f181c64727a84ee8bd0cedd3554346042898b9107010b690c331a"),
}  # fmt: skip


def _files(name: str) -> dict[str, str]:
    """relpath -> zip member base name for one dataset."""
    return {f"uea/{name}/{name}_{split}.ts": f"{name}_{split}.ts" for split in ("TRAIN", "TEST")}


SOURCES = (
    Source(
        folder="uea",
        name="UEA multivariate time series archive (2018)",
        url="https://www.timeseriesclassification.com/dataset.php (<Name>.zip per dataset; also on Zenodo)",
        licence="research use; cite the archive",
        citation="A. Bagnall, H. A. Dau, J. Lines, M. Flynn, J. Large, A. Bostrom, P. Southam, E. Keogh, "
        "The UEA multivariate time series classification archive, 2018, arXiv:1811.00075",
        how="download <Name>.zip from timeseriesclassification.com and put <Name>_TRAIN.ts and "
        "<Name>_TEST.ts in uea/<Name>/",
        sha256={
            relpath: digest
            for name, digests in _SHA256.items()
            for relpath, digest in zip(_files(name), digests, strict=True)
        },
        downloads=tuple(archive(ZIP_URL.format(name=name), _files(name)) for name in _SHA256),
    ),
)
