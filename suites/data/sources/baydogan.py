"""Baydogan's multivariate time series archive (the GTN paper's datasets), MATLAB format."""

from __future__ import annotations

from . import Source, archive, plain

# The converted, zero-padded files live in two repositories of the same author, under other names.
_BDESN = "https://raw.githubusercontent.com/FilippoMB/Bidirectional-Deep-readout-Echo-State-Network/5f906ba7a3d3aceb13f4d4607c796c46cfade12b/dataset/"
_RC = "https://raw.githubusercontent.com/FilippoMB/Time-series-classification-and-clustering-with-Reservoir-Computing/33b6428d81b3f445dee8a77c0f777d135125667a/dataset/"
# Baydogan's page serves one zip of all the .mat files.
_ARCHIVE = (
    "http://www.mustafabaydogan.com/files/viewdownload/20-data-sets/"
    "69-multivariate-time-series-classification-data-sets-in-matlab-format.html"
)

SOURCES = (
    Source(
        folder="baydogan",
        name="Baydogan's multivariate time series archive (as used by the GTN paper)",
        url="http://www.mustafabaydogan.com/multivariate-time-series-discretization-for-classification.html",
        licence="research use; cite Baydogan & Runger",
        citation="M. G. Baydogan and G. Runger, Learning a symbolic representation for multivariate time series "
        "classification, Data Mining and Knowledge Discovery 29(2), 2015",
        how="download the archive of .mat files from Baydogan's page and put <Name>.mat (e.g. ECG.mat) in baydogan/",
        sha256={"baydogan/ECG.mat": "1bb738f87afe6391f3b2f3bcf9559b68641666c0bd59129a0ec2f2084aef5f3b"},
        downloads=(archive(_ARCHIVE, {"baydogan/ECG.mat": "ECG.mat"}),),
    ),
    Source(
        folder="baydogan/padded",
        name="Baydogan datasets, zero-padded and z-normalised conversion (Bianchi et al.)",
        url="https://github.com/FilippoMB/Bidirectional-Deep-readout-Echo-State-Network (folder dataset/)",
        licence="research use; cite Baydogan & Runger and Bianchi et al.",
        citation="F. M. Bianchi, S. Scardapane, S. Lokse, R. Jenssen, Bidirectional deep-readout echo state "
        "networks, ESANN 2018 (conversion of Baydogan's archive)",
        how="from github FilippoMB/Bidirectional-Deep-readout-Echo-State-Network, dataset/: ECG.mat, LIB.mat "
        "(save as Libras.mat), WAF.mat (as Wafer.mat); from FilippoMB/Time-series-classification-and-clustering-"
        "with-Reservoir-Computing, dataset/JpVow.mat (as JapaneseVowels.mat); all into baydogan/padded/",
        sha256={
            "baydogan/padded/ECG.mat": "dd809f9e96332c25aecda6d2ad1d2bb25c3b3b3b1069920d83e3bf78b4e2b52c",
            "baydogan/padded/JapaneseVowels.mat": "06565c0b93c5faed7cf24e07a68de4c95d38aee944ad031b347ab30389456ff6",
            "baydogan/padded/Libras.mat": "e40832a0be07143228cd6719787512a95b0d3fe142590648a012bf1f2868993e",
            "baydogan/padded/Wafer.mat": "5b51d68b964c4b52a879038329d0e942c06bce9f145d35a759bd0da07b6a69f5",
        },
        downloads=(
            plain(_BDESN + "ECG.mat", "baydogan/padded/ECG.mat"),
            plain(_RC + "JpVow.mat", "baydogan/padded/JapaneseVowels.mat"),
            plain(_BDESN + "LIB.mat", "baydogan/padded/Libras.mat"),
            plain(_BDESN + "WAF.mat", "baydogan/padded/Wafer.mat"),
        ),
    ),
)
