# Sourced by the scripts: lets Open MPI run as root (CI and fresh machines run as root) and place more
# ranks than cores (3 ranks on 2 cores: rank 0 mostly sleeps). Binding is off because Open MPI would
# otherwise pin each rank to one core and LibTorch's threads would share it.
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MIL_MPIRUN_FLAGS=(--oversubscribe --bind-to none)
# Ranks share cores with rank 0 and with each other; spinning OpenMP threads then steal the cores their
# peers need (measured: TransMIL 3-7x slower, a batched matmul at 1.8 instead of 20 GFLOP/s). A user
# with dedicated cores per rank may export OMP_WAIT_POLICY=ACTIVE.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
