namespace RlhfSharp.Distributed;

/// <summary>
/// <c>MPI_COMM_WORLD</c> of a process started by <c>mpirun</c>: its rank, the number of ranks, and the collective
/// operations data-parallel training uses (sum-all-reduce, barrier). Every rank must call the same
/// collectives in the same order; a rank that fails calls <see cref="Abort"/> so the others do not wait forever.
/// </summary>
public sealed unsafe class MpiWorld
{
    readonly IntPtr comm, mpiFloat, mpiDouble, sum;

    public int Rank { get; }
    public int Size { get; }

    MpiWorld()
    {
        var library = MpiNative.Load();
        comm = MpiNative.Handle(library, "ompi_mpi_comm_world");
        mpiFloat = MpiNative.Handle(library, "ompi_mpi_float");
        mpiDouble = MpiNative.Handle(library, "ompi_mpi_double");
        sum = MpiNative.Handle(library, "ompi_mpi_op_sum");
        Check(MpiNative.MPI_Initialized(out int initialized), "MPI_Initialized");
        if (initialized == 0) Check(MpiNative.MPI_Init(IntPtr.Zero, IntPtr.Zero), "MPI_Init");
        Check(MpiNative.MPI_Comm_rank(comm, out int rank), "MPI_Comm_rank");
        Check(MpiNative.MPI_Comm_size(comm, out int size), "MPI_Comm_size");
        (Rank, Size) = (rank, size);
        // MPI_Finalize at exit lets mpirun see a clean end; without it every rank is reported as having exited early.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Close();
    }

    /// <summary>Joins the world when this process was started by Open MPI's <c>mpirun</c> (it sets <c>OMPI_COMM_WORLD_SIZE</c>); null otherwise.</summary>
    public static MpiWorld? FromEnvironment() =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is null ? null : new MpiWorld();

    /// <summary>Replaces each element with its sum over every rank.</summary>
    public void SumInPlace(Span<float> values)
    {
        if (values.IsEmpty) return;
        fixed (float* p = values) Check(MpiNative.MPI_Allreduce(MpiNative.InPlace, p, values.Length, mpiFloat, sum, comm), "MPI_Allreduce");
    }

    /// <inheritdoc cref="SumInPlace(Span{float})"/>
    public void SumInPlace(Span<double> values)
    {
        if (values.IsEmpty) return;
        fixed (double* p = values) Check(MpiNative.MPI_Allreduce(MpiNative.InPlace, p, values.Length, mpiDouble, sum, comm), "MPI_Allreduce");
    }

    public void Barrier() => Check(MpiNative.MPI_Barrier(comm), "MPI_Barrier");

    /// <summary>Ends every rank: what a failing rank must do, since the others would wait in their next collective forever.</summary>
    public void Abort(int code) => MpiNative.MPI_Abort(comm, code);

    void Close()
    {
        MpiNative.MPI_Finalized(out int finalized);
        if (finalized == 0) MpiNative.MPI_Finalize();
    }

    // Open MPI's default error handler (MPI_ERRORS_ARE_FATAL) aborts before a code is returned; this catches the rest.
    static void Check(int code, string call)
    {
        if (code != 0) throw new RlhfException($"{call} failed with MPI error {code}.");
    }
}
