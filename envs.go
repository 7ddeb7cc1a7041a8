package qfleet

import (
	// The MinAtar games and the pixel envs are built-in envs like the
	// classic-control ones: a program that trains through this package has
	// them all.
	_ "github.com/qfleet/qfleet/envs/minatar"
	_ "github.com/qfleet/qfleet/envs/pixels"
)
