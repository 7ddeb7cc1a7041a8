// Package openblas links OpenBLAS into builds made with -tags openblas; without the tag it is
// empty.
package openblas
