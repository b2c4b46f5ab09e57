module beamline/benchgo

go 1.19
