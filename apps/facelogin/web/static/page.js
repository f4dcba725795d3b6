// Pages without their own behaviour still get sign-out and local times.
import './common.js';
