// Package cputime reads the CPU time that benchmarks and load runs report
// beside wall time: on a machine shared with other work, wall time also
// counts the time others held the CPU.
package cputime
