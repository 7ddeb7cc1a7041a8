// Package messages holds the protobuf messages of every qfleet flow (proto
// package qfleet.v1). Regenerate with `make proto`.
package messages

//go:generate protoc --go_out=. --go_opt=paths=source_relative qfleet.proto
