"""Commercial-district analysis (Seoul's 우리마을가게 상권분석서비스, "golmok") for any city.

Modules named after what they hold: `schema` (the typed Parquet layout of a data directory and its
validation), `readers` (Seoul's published quarterly CSVs into that layout), `generate` (Seoul-like
simulated quarterly data, the offline default), `rawgen` (raw card-payment and floating-population
records, up to billions of rows), `cli` (`citywall commerce ...`). The package import stays light:
importing a submodule does not pull in the others.
"""
