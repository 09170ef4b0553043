using Sweep.Orchestrator.Cli;

return await SweepCommandLine.RunAsync(args);
