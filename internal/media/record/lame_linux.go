package record

import "syscall"

// lowerPriority gives the process the nice value lamePriority (setpriority(2)).
func lowerPriority(pid int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, lamePriority) }
