// Package sweep runs hyper-parameter searches: the body of 'qfleet sweep'
// and of a 'qfleet node' with the trials role, as a Go API, so that a
// program can run a sweep without the command line.
//
// A spec (LoadSpec, ParseSpec) names an env, a base config and the config
// keys to search, on a grid or by random draws; Spec.Expand lists its
// trials, one per parameter point and seed, each with the full config of
// its run, validated up front. A trial's id and key come from the spec
// alone, so a sweep run again on the same output directory resumes: Run
// skips the trials its results.jsonl records as ok.
//
// Every trial runs as a child process, 'EXE dev --config FILE', in a run
// directory of its own, so that a trial that crashes takes nothing else
// down and a trial can be rerun alone. EXE is the running executable
// (os.Executable) unless WorkerOptions.Executable or Options.Executable
// names another: a program of its own that calls Run must dispatch the dev
// command as cli.Main does (a qfleet binary with its own environments
// registered, say), or name a qfleet binary.
//
// Run runs the trials here (Options.Parallel at a time), or joins a cluster
// (Options.Cluster) and hands them to the members with the trials role: a
// node running RunTrialsNode, or one that called StartWorker beside its
// training roles. A coordinator actor hands the trials out and records the
// first result of each exactly once; a trial whose node dies, leaves or
// falls silent runs again elsewhere (coordinator.go says how). The results
// are files in the output directory (results.jsonl, read by ReadResults;
// results.tsv; the trials' run directories) and a Markdown table
// (MarkdownTable) on Options.Stdout.
package sweep
