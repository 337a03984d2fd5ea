<#
.SYNOPSIS
    Refreshes the registry pull credential the platform keeps in Key Vault when it is
    close to expiry.
.NOTES
    Runbook type: PowerShell (runtime environment PowerShell-7.4).
#>
param(
    [Parameter(Mandatory = $true)] [string] $KeyVaultName,
    [string] $SecretName = 'publisher-pull-credential',
    [int] $RenewWithinDays = 14,
    [string] $IdentityClientId = $env:VIBEDATA_IDENTITY_CLIENT_ID
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

Connect-AzAccount -Identity -AccountId $IdentityClientId | Out-Null

$secret = Get-AzKeyVaultSecret -VaultName $KeyVaultName -Name $SecretName
if ($null -eq $secret) {
    throw "Secret $SecretName not found in vault $KeyVaultName"
}

$expires = $secret.Expires
if ($null -ne $expires -and $expires -gt (Get-Date).ToUniversalTime().AddDays($RenewWithinDays)) {
    Write-Output "Secret $SecretName is valid until $($expires.ToString('u')); nothing to do"
    return
}

$newExpiry = (Get-Date).ToUniversalTime().AddDays(90)
Update-AzKeyVaultSecret -VaultName $KeyVaultName -Name $SecretName -Version $secret.Version -Expires $newExpiry | Out-Null
Write-Output "Extended $SecretName until $($newExpiry.ToString('u'))"
