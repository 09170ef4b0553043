return Sweep.GpuWorker.Host.WorkerProcessMain.Run(args);
